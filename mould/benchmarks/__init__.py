"""The benchmarks behind ``mould bench``: each measures a job of the toolkit and gives back its figures.

One module per bench, each with its frozen config (the options of ``mould bench NAME``, their defaults and
checks) and a function that runs it, returns its rows and hands each printed line to an ``echo`` callable
(library code never prints):

- :mod:`~mould.benchmarks.encode`: mesh -> mould and mould -> points times;
- :mod:`~mould.benchmarks.mesh`: mould -> mesh time and accuracy per mesher;
- :mod:`~mould.benchmarks.model`: the network's forward (and training-step) time, parameters, FLOPs;
- :mod:`~mould.benchmarks.reconstruct`: photo -> textured mesh end to end, per stage;
- :mod:`~mould.benchmarks.synth`: synthetic samples per second, in memory, on the CPU or a GPU;
- :mod:`~mould.benchmarks.representation` (the experiment) and
  :mod:`~mould.benchmarks.representation_report` (its table, JSON and figure): moulds vs voxel grids.

Shared: :mod:`~mould.benchmarks.timings` (repeated timing), :mod:`~mould.benchmarks.benchmark_bodies` (the
anny bodies measured). The configs' modules import nothing heavy, so ``mould bench --help`` stays instant.
"""
