"""The process runtime: the stack as supervised local processes (runtime.ProcessRuntime).

- runtime: the Runtime interface over the modules below;
- plan: what each process runs (command, environment, files), from the rendered project;
- topology: where each component listens and how the others reach it on this machine;
- ports: ports given out at `up`, checked free, their owner named;
- paths: container paths carried over to the project's directory;
- supervisor: starting under a restarting runner, watching the start-up, stopping;
- state: the state file (what was started, recognised again from any shell);
- logs: reading and following the components' log files;
- archives: tar streams in and out, a state directory replaced without losing the previous one;
- binaries: each component's binary, its version, and how to get it.

Nothing is imported here, so that a command needing one module (a binary's version) loads only it.
"""
