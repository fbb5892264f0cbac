// Arrow keys in a menu (the WAI-ARIA menu pattern): Down and Up move to
// the next and previous item, wrapping around, Home and End to the first
// and last. menuStep is the DOM-free part; menuKeys wires it to a menu.

// menuStep is the index to focus after key, from index at (-1: none
// focused) among count items; -1 when key does not move.
export function menuStep(key, at, count) {
  if (count <= 0) return -1;
  switch (key) {
    case 'ArrowDown': return at < 0 ? 0 : (at + 1) % count;
    case 'ArrowUp': return at < 0 ? count - 1 : (at - 1 + count) % count;
    case 'Home': return 0;
    case 'End': return count - 1;
    default: return -1;
  }
}

// menuKeys moves the focus among the visible [role^=menuitem] elements
// of menu with the arrow keys.
export function menuKeys(menu) {
  menu.addEventListener('keydown', (ev) => {
    const items = [...menu.querySelectorAll('[role^="menuitem"]')].filter((e) => !e.hidden && !e.disabled);
    const next = menuStep(ev.key, items.indexOf(document.activeElement), items.length);
    if (next < 0) return;
    ev.preventDefault();
    items[next].focus();
  });
}
