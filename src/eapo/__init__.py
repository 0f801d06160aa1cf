"""eapo: Expert-Assisted Policy Optimization.

Reinforcement learning for language models in which the policy, while training, may stop
and consult stronger expert models; the help is withdrawn over training and the policy is
evaluated alone. See docs/ and ../shared/EAPO.md for the method.

Nothing heavy is imported here: `import eapo` must stay cheap (the expert layer, for
instance, never needs torch).
"""

__version__ = "0.1.0"
