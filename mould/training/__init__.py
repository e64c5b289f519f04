"""Training (``mould train``): the loop, its options, data, updates, validation, checkpoints and run records.

:func:`mould.training.loop.train` runs a :class:`mould.training.config.TrainConfig`; the rest of the package
serves it (one module per concern: ``setup`` opens data and precision, ``sampler`` draws batches,
``updater`` steps the optimisers, ``validation`` scores held-out samples, ``state`` saves and resumes,
``run_log`` and ``run_info`` record the run, ``distributed`` and ``stop_signals`` handle processes).
"""
