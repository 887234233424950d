#!/bin/sh
# Start a demo town on SQLite at http://127.0.0.1:8000 (creates venv, database, keys, town, demo resident).
set -eu
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
mkdir -p demo
if [ ! -f demo/config.yaml ]; then
    cat > demo/config.yaml <<'YAML'
instance:
  url: http://127.0.0.1:8000
  name: Saint-Demo
  data_dir: data
federation:
  allow_http: true   # demo only: a real town serves https
town:
  name: Saint-Demo
  code: "38999"
  centre: {lat: 45.19, lon: 5.72}
  radius_km: 4
  neighbourhoods:
    - {name: Centre, lat: 45.19, lon: 5.72}
    - {name: Les Vignes, lat: 45.20, lon: 5.74}
YAML
fi
export FEDINEIGHBOUR_CONFIG=demo/config.yaml
.venv/bin/fedineighbour init
if [ ! -f demo/data/demo-token ]; then
    .venv/bin/fedineighbour user create demo >/dev/null
    .venv/bin/fedineighbour token create demo > demo/data/demo-token
fi
echo "demo resident: demo@127.0.0.1:8000, API token in demo/data/demo-token"
echo "try: curl -H \"Authorization: Bearer \$(cat demo/data/demo-token)\" -H 'Content-Type: application/json' \\"
echo "       -d '{\"content\": \"Je prête une perceuse\"}' http://127.0.0.1:8000/api/v1/notes"
exec .venv/bin/fedineighbour serve
