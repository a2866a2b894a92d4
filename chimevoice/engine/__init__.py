"""The sans-IO call engine: one state machine per transaction.

Nothing in this package does I/O, sleeps or touches threads. A
:class:`~chimevoice.engine.transaction.Transaction` takes inputs (handler
responses, call answered, DTMF, playback finished, timer fired) and queues
:mod:`~chimevoice.engine.commands` for the driver to carry out.
"""
