// IndexTTS2 node pack: a one-line description on each of the pack's template cards. ComfyUI 0.3.64
// (frontend 1.27) shows a custom node template's file name as its title (the files are named by
// their titles) and the same name again as its description; it reads no other metadata. This
// replaces that repeated name with the description from web/template_cards.json (written by
// tests/test_workflows_build.py). Cards are found by their data-testid; a frontend without them
// keeps its own text.
const CARDS = fetch(new URL("../template_cards.json", import.meta.url))
  .then((r) => (r.ok ? r.json() : {}))
  .catch(() => ({}));

const SELECTOR = '[data-testid^="template-workflow-"]';

function describe(root, cards) {
  const found = [...(root.matches?.(SELECTOR) ? [root] : []), ...(root.querySelectorAll?.(SELECTOR) ?? [])];
  for (const card of found) {
    const info = cards[card.dataset.testid.slice("template-workflow-".length)];
    const p = info && card.querySelector("p");
    if (p && p.textContent !== info.description) {
      p.textContent = info.description;
      p.title = info.description;
    }
  }
}

CARDS.then((cards) => {
  if (!Object.keys(cards).length) return;
  new MutationObserver((changes) => {
    for (const change of changes) for (const node of change.addedNodes) if (node.nodeType === 1) describe(node, cards);
  }).observe(document.body, { childList: true, subtree: true });
  describe(document, cards);
});
