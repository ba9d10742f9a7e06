"""ReLU Lab dashboard entry point: routes between pages and nothing else."""

import sys
from pathlib import Path

# `streamlit run app/main.py` puts app/ on sys.path, not the repository root that holds the
# profiling and relu_impls packages.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

# Not "pages/": Streamlit would also list that folder as old-style pages beside st.navigation.
PAGES_DIR = Path(__file__).parent / "views"

st.set_page_config(page_title="ReLU Lab", page_icon=":material/monitoring:", layout="wide")

pages = [
    st.Page("views/run.py", title="Run", icon=":material/play_arrow:", default=True),
    st.Page("views/compare.py", title="Compare", icon=":material/bar_chart:"),
    st.Page("views/traces.py", title="Traces", icon=":material/timeline:"),
    st.Page("views/variants.py", title="Variants", icon=":material/function:"),
]
# Owned by the scenarios engineer; shown when present.
for name, title, icon in (("scenarios", "Scenarios", ":material/science:"), ("capture", "Capture", ":material/radio_button_checked:")):
    if (PAGES_DIR / f"{name}.py").exists():
        pages.append(st.Page(f"views/{name}.py", title=title, icon=icon))

st.navigation(pages).run()
