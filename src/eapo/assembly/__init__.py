"""Assembly: a run put together from its configuration.

The layer between the parts and the entry points. Training (`eapo.training.run.train_run`)
and evaluation take what they work on ready-made: a task, an expert pool, a policy path.
Turning a configuration into those is here, once, for every caller (`eapo train`,
`eapo eval --experts`, `eapo compare`, the warm-start rebuild):

- `run`: the task of a `task:` section, the settings the task implies, the policy, and a
  training run from its configuration (`train_from_config`);
- `pool`: the expert pool of an `experts:` section, for training and for evaluation;
- `arms`: the arms of `eapo train` from one warm start (base row, self-RL, EAPO), and
  `arms_distributed` the same under `accelerate launch`.

Why a layer of its own: building a task needs the benchmarks' loader (evaluation) and a
pool the run's config (training); placed in either, the two import each other. Here both
sit below, and nothing below imports this (tests/test_architecture.py checks it).

Nothing is imported here: `import eapo.assembly` stays cheap.
"""
