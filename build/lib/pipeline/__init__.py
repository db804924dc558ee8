"""The main job: every stage of the engine on one set of extracts, as one command.

The stages themselves live in their packages (``extracts``, ``pseudonymisation``, ``linkage``,
``cohort``); this package only runs them in order, shows progress and says where outputs are.
It sits on top of the import chain and nothing imports it.
"""
