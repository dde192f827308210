"""bienbao.bench: latency and memory profiling on the device (torch-free).

This release holds no benchmark yet (see the package README); importing it never imports torch.
"""

__all__: list[str] = []
