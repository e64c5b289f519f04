"""Evaluation (``mould eval``): scores of predicted moulds against the truth, reports and pictures.

``scores`` defines every score (depth L1, silhouette IoU, mesh distances), ``evaluate`` runs a checkpoint
over a folder of samples, ``report`` writes the report folder and ``pictures`` draws predictions for people
to look at (training's validation uses the same scores and pictures).
"""
