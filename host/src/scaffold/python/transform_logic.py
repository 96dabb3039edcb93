"""What {{name}} decides, in plain Python (no gateway needed): tested by test_logic.py."""


def with_prefix(user_id: str, prefix: str) -> str:
    """An example: the user id with the `prefix` of the plugin's config."""
    return prefix + user_id
