"""The reward of verl's consult-tool path (`tool.EAPOConsultTool` in verl's stock
`tool_agent` loop), where verl scores the decoded response, expert replies included.

`compute_score` deletes every observation block (`<expert id=..>..</expert>`,
`<notice>..</notice>`, which experts cannot forge: their text is sanitised) before parsing
the answer, so an answer only an expert wrote is never credited (EAPO.md §8). The agent
loop path does not need this: there the engine reads the answer from mask-1 tokens.

Not here: anything importing verl. `eapo.integrations.verl.core` re-exports both names.
"""

from __future__ import annotations

import re
from typing import Any

from eapo.protocol.parser import parse_segment
from eapo.rewards.reward import RewardConfig, composite_reward
from eapo.rewards.scorers import SCORERS

_OBSERVATION = r"<expert id=\"\d+\">.*?</expert>|<notice>.*?</notice>"


def strip_observations(text: str, tags: Any = None) -> str:
    """The response without expert replies and notices (the default tags).

    >>> strip_observations('I ask <expert id="0">42</expert> so <answer>7</answer>')
    'I ask  so <answer>7</answer>'
    """
    if tags is None:
        return re.sub(_OBSERVATION, "", text, flags=re.S)
    pattern = "|".join([re.escape(tags.expert_open).replace(re.escape("{id}"), r"\d+") + ".*?"
                        + re.escape(tags.expert_close),
                        re.escape(tags.notice_open) + ".*?" + re.escape(tags.notice_close)])
    return re.sub(pattern, "", text, flags=re.S)


def compute_score(data_source: str, solution_str: str, ground_truth: str, extra_info: Any = None,
                  scorer: str = "math", **_: Any) -> float:
    """verl custom reward function (`custom_reward_function.path` = this module's file or
    `core.py`, which re-exports it; `name: compute_score`) for the consult-tool path:
    EAPO.md §3 on the policy's own text.

    >>> compute_score("x", 'q <expert id="0"><answer>7</answer></expert> <answer>7</answer>', "7")
    1.0
    >>> compute_score("x", 'q <expert id="0"><answer>7</answer></expert> I give up', "7")
    0.0
    """
    from eapo.protocol.tags import Tags

    tags = Tags(allow_boxed=True)
    text = strip_observations(solution_str, tags)
    parsed = parse_segment(text, tags, max_queries=1_000_000, final=True)
    result = SCORERS.get(scorer)(parsed.answer, str(ground_truth))
    reward, _ = composite_reward(result.score, parsed.well_formed and parsed.answer is not None, 0, 0.0, "success",
                                 RewardConfig())
    return float(reward)
