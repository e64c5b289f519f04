"""Neural networks: the stacked hourglass, the discriminator, the losses, checkpoints, shipped weights."""
