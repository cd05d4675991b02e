"""Sub-commands of the ``crypto-ml`` console script, one module per topic.

Each module defines ``register(subparsers)`` which adds its sub-commands; the handler of each
sub-command is stored with ``parser.set_defaults(func=...)`` and returns an exit code.
"""
