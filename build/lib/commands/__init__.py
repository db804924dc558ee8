"""The console scripts (``[project.scripts]``): one light entry point per command.

:mod:`commands.scripts` is all a command loads before it can handle Ctrl-C: it imports only the
standard library, then the command's own module (``extracts.__main__``, ``audit.__main__``, ...)
by name, so it adds nothing to the auditor's or the report's independence from the engine.
"""
