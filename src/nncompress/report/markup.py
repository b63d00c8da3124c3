"""Jinja2 as the report's HTML is written: every value escaped unless it is HTML already (has `__html__`), and a
template's line breaks and indentation kept out of the page."""
from html import escape
from pathlib import Path

from jinja2 import Environment, FileSystemLoader
from jinja2.ext import Extension
from markupsafe import Markup


class Compact(Extension):
    """Each line of a template, stripped, follows the last with nothing between: a template reads as laid out and
    the page stays one line, as it always was (so a line break within text would join two words)."""

    def preprocess(self, source, name, filename=None):
        return "".join(line.strip() for line in source.splitlines())


def escaped(value):
    """`value` as text in HTML, with the entities of html.escape (`&quot;`, `&#x27;`), which the page has always
    had, rather than markupsafe's (`&#34;`, `&#39;`)."""
    return value if hasattr(value, "__html__") else Markup(escape(str(value)))


HTML = Environment(loader=FileSystemLoader(Path(__file__).parent), autoescape=True, finalize=escaped,
                   extensions=[Compact])  # fmt: skip
