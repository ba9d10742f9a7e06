"""ReLU Lab dashboard entry point: routes between pages and nothing else."""

# profiling, relu_impls and app are importable from anywhere once `make` has installed the
# project (pip install -e .); `streamlit run app/main.py` puts only app/ on sys.path.
import streamlit as st

# Pages live in views/, not pages/: Streamlit would also list a pages/ folder as old-style pages
# beside st.navigation.
st.set_page_config(page_title="ReLU Lab", page_icon=":material/monitoring:", layout="wide")
# Multiselect chips show their whole label, on more lines if they must, instead of scrolling
# out of sight under a fade ("ustom_op…", "ma…"); the full name is also each chip's tooltip.
st.html("""<style>
.stMultiSelect div[role="group"] { max-height: none; height: auto; }
.stMultiSelect [data-testid="stMultiSelectTagsContainer"] { flex-wrap: wrap; row-gap: 4px;
  height: auto; overflow-x: visible; mask-image: none; -webkit-mask-image: none; }
.stMultiSelect [data-tag] { height: auto; max-width: 100%; }
.stMultiSelect [data-tag] > span { white-space: normal; overflow: visible; text-overflow: clip; }
</style>""")

pages = [
    st.Page("views/run.py", title="Run", icon=":material/play_arrow:", default=True),
    st.Page("views/compare.py", title="Compare", icon=":material/bar_chart:"),
    st.Page("views/history.py", title="History", icon=":material/history:"),
    st.Page("views/traces.py", title="Traces", icon=":material/timeline:"),
    st.Page("views/variants.py", title="Variants", icon=":material/function:"),
    st.Page("views/model.py", title="Model", icon=":material/account_tree:"),
    st.Page("views/scenarios.py", title="Scenarios", icon=":material/science:"),
    st.Page("views/capture.py", title="Capture", icon=":material/radio_button_checked:"),
]
st.navigation(pages).run()
