"""Formatting, kept apart from computation (as torchinfo does): one module per command, each turning
that command's report (convcalc.reports) into rich renderables for a terminal and a JSON document;
``common`` holds what they share. Only this package and convcalc.cli import rich."""
