#!/usr/bin/env bash
# Fetch the MindSpore FAQ pages from the public MindSpore docs repository into DEST, in the layout faqbot reads
# (corpus/README.md): DEST/mindspore-<branch>/ is a checkout of that branch (sparse and shallow: only the FAQ
# pages, at the repository's own paths). Run it again to update them. Then: python app.py --corpus DEST
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

fetch() {  # fetch BRANCH PATTERN...: DEST/mindspore-BRANCH becomes a sparse, shallow checkout of BRANCH
  local branch=$1 dir="$DEST/mindspore-$1"
  shift
  if [ -d "$dir/.git" ]; then  # run again: bring the checkout up to date
    git -C "$dir" sparse-checkout set --no-cone "$@"
    git -C "$dir" pull --quiet --depth 1 origin "$branch"
  else
    git clone --quiet --depth 1 --branch "$branch" --filter=blob:none --no-checkout "$REPO" "$dir"
    git -C "$dir" sparse-checkout set --no-cone "$@"
    git -C "$dir" checkout --quiet
  fi
  echo "get_mindspore_faq: $(find "$dir" -name '*.md' -not -path '*/.git/*' | wc -l) pages of branch $branch in $dir" >&2
}

fetch master "${MASTER_PAGES[@]}"
fetch r1.1 "${R11_PAGES[@]}"
