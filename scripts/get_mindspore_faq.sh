#!/usr/bin/env bash
# Fetch the MindSpore FAQ pages from the public MindSpore docs repository into DEST, in the layout faqbot reads
# (corpus/README.md): DEST/mindspore-<branch>/<the repository's own path>. Only the FAQ pages are checked out
# (a sparse, shallow clone per branch). Then: python app.py --corpus DEST
#
#   bash scripts/get_mindspore_faq.sh ~/mindspore-faq
#   MINDSPORE_DOCS_REPO=https://gitee.com/mindspore/docs.git bash scripts/get_mindspore_faq.sh ~/mindspore-faq
set -euo pipefail

DEST=${1:?usage: bash scripts/get_mindspore_faq.sh DEST_FOLDER}
REPO=${MINDSPORE_DOCS_REPO:-https://github.com/mindspore-ai/docs.git}

# The FAQ pages of each branch (gitignore-style patterns, as `git sparse-checkout --no-cone` reads them).
MASTER_PAGES=(
  "/docs/mindspore/source_en/faq/*.md" "/docs/mindspore/source_zh_cn/faq/*.md"
  "/docs/lite/docs/source_*/reference/faq.md"
  "/docs/mindformers/docs/source_*/faq/*.md"
  "/docs/vllm_mindspore/docs/source_*/faqs/faqs.md"
)
for component in federated graphlearning mindarmour mindinsight mindpandas serving; do
  MASTER_PAGES+=("/docs/$component/docs/source_*/faq.md")
done
R11_PAGES=("/docs/faq/source_en/*.md" "/docs/faq/source_zh_cn/*.md")

fetch() {  # fetch BRANCH PATTERN...: copy the matching pages to DEST/mindspore-BRANCH/
  local branch=$1 tmp
  shift
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  git clone --quiet --depth 1 --branch "$branch" --filter=blob:none --no-checkout "$REPO" "$tmp"
  git -C "$tmp" sparse-checkout set --no-cone "$@"
  git -C "$tmp" checkout --quiet
  (cd "$tmp" && find docs -name '*.md' -type f) | while read -r page; do
    install -D -m 644 "$tmp/$page" "$DEST/mindspore-$branch/$page"
  done
  echo "get_mindspore_faq: $(find "$DEST/mindspore-$branch" -name '*.md' | wc -l) pages of branch $branch in $DEST/mindspore-$branch" >&2
}

fetch master "${MASTER_PAGES[@]}"
fetch r1.1 "${R11_PAGES[@]}"
