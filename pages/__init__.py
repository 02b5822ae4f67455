"""The toolkit of every page leadscore writes (the marketing report, the monitoring page):
the style sheet, cell formatting, the one table helper, inline SVG figures, the Jinja2
environment, and whole-or-nothing writes of a page and its side file.

The ground floor: imports nothing of ours, so that training and operations share it.
"""
