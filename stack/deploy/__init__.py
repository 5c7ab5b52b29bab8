"""`stack deploy`: the same stack on a server, over SSH.

target (ssh://user@host[:port] or a docker context) -> facts about the server -> preflight checks
(nothing changed on the server before they pass) -> an SSH tunnel to the server's loopback ports ->
the same up flow as `stack up` (lifecycle.up) with the remote Docker engine.
"""
