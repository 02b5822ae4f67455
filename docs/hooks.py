"""MkDocs hook: the reference pages' generated parts (`leadscore.reference`), put in place of
their `<!-- generated: NAME -->` markers when the site builds."""

from __future__ import annotations

MARKER = "<!-- generated: {} -->"


def on_page_markdown(markdown, page, config, files):
    from leadscore import reference

    makers = {
        "cli": reference.cli_reference,
        "config": reference.config_reference,
        "api": reference.api_reference,
    }
    for name, make in makers.items():
        marker = MARKER.format(name)
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown
