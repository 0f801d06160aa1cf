"""The built-in comparison's size: what `eapo compare` runs with no configuration file.

Why not `eapo train`'s defaults: the comparison trains eight RL rows and two distilled
rows for three seeds, and the issue's budget is 60 minutes on 2 CPU cores (10 for
`--quick`). These overrides are applied on top of `TrainConfig()` before `--set`, and a
user's CONFIG file replaces them entirely (a file is taken as written).
"""

COMPARE_DEFAULTS: tuple[str, ...] = (
    "rl.steps=100",
    "rl.save_steps=50",
    "eval.every_steps=25",
    "eval.val_size=100",
    "eval.test_size=200",
)

COMPARE_QUICK: tuple[str, ...] = (
    "rl.steps=20",
    "rl.prompts_per_step=4",
    "rl.save_steps=10",
    "rl.log_steps=5",
    "rl.dump_rollouts_every=0",
    "eval.every_steps=10",
    "eval.val_size=20",
    "eval.test_size=50",
    "eval.n=2",
    "eval.k=[1,2]",
)
