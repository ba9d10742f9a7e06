"""ReLU Lab dashboard entry point: routes between pages and nothing else."""

import sys
from pathlib import Path

# `streamlit run app/main.py` puts app/ on sys.path, not the repository root that holds the
# profiling and relu_impls packages.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

# Pages live in views/, not pages/: Streamlit would also list a pages/ folder as old-style pages
# beside st.navigation.
st.set_page_config(page_title="ReLU Lab", page_icon=":material/monitoring:", layout="wide")

pages = [
    st.Page("views/run.py", title="Run", icon=":material/play_arrow:", default=True),
    st.Page("views/compare.py", title="Compare", icon=":material/bar_chart:"),
    st.Page("views/history.py", title="History", icon=":material/history:"),
    st.Page("views/traces.py", title="Traces", icon=":material/timeline:"),
    st.Page("views/variants.py", title="Variants", icon=":material/function:"),
    st.Page("views/scenarios.py", title="Scenarios", icon=":material/science:"),
    st.Page("views/capture.py", title="Capture", icon=":material/radio_button_checked:"),
]
st.navigation(pages).run()
