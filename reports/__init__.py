"""The annual 无废城市 indicator report and its views: JSON, Excel, a readable HTML page. Imports only ``nofei``."""
