"""Reports built from stored trial records: leaderboards, statistics and their exports."""

from .leaderboard import leaderboard, to_markdown, to_rich_table, trial_frame
from .tables import Report, ReportTable, build_report

__all__ = ["Report", "ReportTable", "build_report", "leaderboard", "to_markdown", "to_rich_table",
           "trial_frame"]
