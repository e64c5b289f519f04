"""From moulds to meshes: Poisson and stitching, texture, export, metrics."""
