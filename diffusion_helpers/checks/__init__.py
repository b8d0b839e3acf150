"""One check per concept, used everywhere the concept is met: image tensors, masks, labels,
sizes and plain numbers. Each raises ``ValueError`` with a message that says what is wrong and
what to do, before any work starts; :mod:`.paths` names a file in such a message, whatever
bytes its name holds."""
