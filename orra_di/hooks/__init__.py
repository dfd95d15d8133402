"""Built-in hooks. Each lives in its own module and is imported from there:

- :mod:`orra_di.hooks.logging` — :class:`~orra_di.hooks.logging.LoggingHook`;
- :mod:`orra_di.hooks.working_directory` —
  :class:`~orra_di.hooks.working_directory.WorkingDirectoryHook`.
"""
