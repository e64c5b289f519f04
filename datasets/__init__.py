"""Training data: synthetic clothed humans, SURREAL, 3D HUMANS, one record format."""
