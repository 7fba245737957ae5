"""Component ids, named once (tests and callbacks use these constants)."""

# model and data
DEMO_SELECT = "demo-select"
MODEL_UPLOAD = "model-upload"
MODEL_INPUT_DIM = "model-input-dim"
MODEL_OUTPUT_NAMES = "model-output-names"
MODEL_INPUT_NAMES = "model-input-names"
DATA_UPLOAD = "data-upload"
DATA_COLUMNS = "data-columns"
DATA_CHANNELS_LAST = "data-channels-last"
DATA_IMAGE_MEAN = "data-image-mean"
DATA_IMAGE_STD = "data-image-std"
MODEL_REF = "model-ref"
DATA_REF = "data-ref"
MODEL_INFO = "model-info"
DATA_INFO = "data-info"
ERROR_ALERT = "error-alert"

# method and parameters
METHOD_SELECT = "method-select"
PARAMETER_PANEL = "parameter-panel"
REFERENCE_AREA = "reference-area"
REFERENCE_UPLOAD = "reference-upload"
REFERENCE_INFO = "reference-info"
REFERENCE_REF = "reference-ref"
OUTPUT_SELECT = "output-select"
ROWS_INPUT = "rows-input"
ROWS_FEEDBACK = "rows-feedback"
DATA_ROWS = "data-rows"
COMPUTE_BUTTON = "compute-button"
CANCEL_BUTTON = "cancel-button"
PROGRESS = "progress"
STATUS = "status"
JOB_REQUEST = "job-request"
JOB_POLL = "job-poll"
RESULT_REF = "result-ref"
STALE_NOTICE = "stale-notice"
SESSION = "session"

# views
TABS = "view-tabs"
INDIVIDUAL_GRAPH = "individual-graph"
INDIVIDUAL_ROWS = "individual-rows"
INDIVIDUAL_OUTPUTS = "individual-outputs"
AGGR_CHANNELS = "aggr-channels"
PLOT_OPTIONS = "plot-options"
GLOBAL_GRAPH = "global-graph"
GLOBAL_OUTPUTS = "global-outputs"
PREPROCESS = "preprocess"
GLOBAL_AGGR_CHANNELS = "global-aggr-channels"
REFERENCE_ROW = "global-reference-row"
TABLE = "result-table"
DOWNLOAD_CSV = "download-csv"
DOWNLOAD_NPZ = "download-npz"
DOWNLOAD_PARAMS = "download-params"
DOWNLOAD = "download"
MODEL_SUMMARY = "model-summary"


def parameter(name: str) -> dict:
    """The id of a method parameter's control (pattern-matching, ``{"type", "name"}``)."""
    return {"type": "parameter", "name": name}


def parameter_box(name: str) -> dict:
    """The id of the block around a parameter's control (marked when its value is refused)."""
    return {"type": "parameter-box", "name": name}


def parameter_feedback(name: str) -> dict:
    """The id of the text under a parameter's control: why its value is refused."""
    return {"type": "parameter-feedback", "name": name}


def rule(kind: str, layer_type: str) -> dict:
    """The id of a per-layer-type rule control: ``kind`` is "rule_name" or "rule_param"."""
    return {"type": kind, "layer": layer_type}


# table downloads
DOWNLOAD_PYTHON = "download-python"
