"""Load .env files."""

from dotenvx.errors import DotenvError
from dotenvx.loader import dotenv_values, find_dotenv, load_dotenv
from dotenvx.parser import parse_dotenv

__all__ = ["DotenvError", "dotenv_values", "find_dotenv", "load_dotenv", "parse_dotenv"]
