"""Access-log parsing and summaries."""

from logline.parser import LogRecord, ParseError, parse_file, parse_line
from logline.stats import Summary, summarise

__all__ = ["LogRecord", "ParseError", "Summary", "parse_file", "parse_line", "summarise"]
