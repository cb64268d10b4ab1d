"""A reward function named by import path (``reward_plugin:vowel_reward``), as a user brings one;
tests/ is on the path of every test process, launched ones included."""


def vowel_reward(completions, **_columns):
    """Rewards that differ between completions even for an untrained model."""
    return [sum(ch in "aeiou" for ch in text) / 10 for text in completions]
