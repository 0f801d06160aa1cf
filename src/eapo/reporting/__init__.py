"""See what training did: `eapo report` turns run folders into PNG plots and one
self-contained HTML page with a results table and a trajectory viewer.

Modules: `names` (the metric-name scheme, also used by training), `runs` (reading run
folders, old and new, tolerantly), `plots` (matplotlib), `episodes` (rollout dumps ->
viewer records), `html` (the page), `report` (the whole job). Importing the package is
cheap: matplotlib is imported only by `plots`.
"""
