"""The application layer: pipelines that compose recon, models and datasets (reconstruct, train, evaluate)."""
