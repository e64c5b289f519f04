"""Reconstruction (``mould reconstruct``): photo -> textured, watertight mesh.

``person`` finds the person in a photo and cuts the crop the network sees; ``pipeline`` runs the network,
meshes, textures and writes the outputs of each photo of a batch.
"""
