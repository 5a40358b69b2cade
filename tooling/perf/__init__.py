"""Performance tooling: the synthetic data set (``seed``), the query benchmark (``patterns``,
``perf``) and the data-quality report (``analyze``) behind ``scout db seed|perf|analyze``."""
