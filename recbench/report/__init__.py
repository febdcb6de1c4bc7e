"""Reports built from stored trial records: leaderboards and their exports."""

from .leaderboard import leaderboard, to_markdown, to_rich_table

__all__ = ["leaderboard", "to_markdown", "to_rich_table"]
