"""A tiny template engine."""

from tinytpl.engine import Template, render
from tinytpl.errors import TemplateError, TemplateSyntaxError

__all__ = ["Template", "TemplateError", "TemplateSyntaxError", "render"]
