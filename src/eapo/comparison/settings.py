"""The built-in comparison's size: what `eapo compare` runs with no configuration file.

Why not `eapo train`'s defaults as they are: the comparison trains eight RL rows and two
distilled rows for three seeds, and its budget is 60 minutes on 2 CPU cores (10 for
`--quick`), so runs are shorter (80 updates instead of 200) and evaluations smaller. The
learning settings are `eapo train`'s (EAPO.md §4 defaults), not tuned on these results.
Rollouts are dumped every 5 updates so the mechanism diagnostics (aided against unaided
success, zero-variance groups by phase) have enough episodes. These overrides are applied
on top of `TrainConfig()` before `--set`; a user's CONFIG file replaces them entirely.
"""

COMPARE_DEFAULTS: tuple[str, ...] = (
    "rl.steps=80",
    "rl.save_steps=40",
    "rl.dump_rollouts_every=5",
    "eval.every_steps=20",
    "eval.val_size=50",
    "eval.test_size=200",
)

COMPARE_QUICK: tuple[str, ...] = (
    "rl.steps=20",
    "rl.prompts_per_step=4",
    "rl.save_steps=10",
    "rl.log_steps=5",
    "rl.dump_rollouts_every=5",
    "eval.every_steps=10",
    "eval.val_size=20",
    "eval.test_size=50",
    "eval.n=2",
    "eval.k=[1,2]",
)
