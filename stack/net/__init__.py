"""How stack reaches things over the network from this machine, one way each.

- `address`: the rule from a bind address to the host part of a URL (to connect, or to show a user);
- `ports`: whether a port is free, a free port, whether something answers on a port;
- `http`: one HTTP request helper over a kept-alive `requests.Session` per thread.

Imports stay light (requests is loaded on the first request): `stack status` pays only for what it uses.
"""
