// reactionBar is the row under a chat message with its emoji reactions:
// one button per emoji with its count (pressed when the user is among
// them; a click adds or takes back the user's), and "Add reaction",
// which opens the six emoji to pick from. toggle(emoji, remove) sends
// the change (Chat.react); nameOf names the reactors in the tooltip.

import { el } from './dom.js';
import { REACTIONS } from './chat-reactions.js';

export function reactionBar(list, { toggle, nameOf }) {
  const bar = el('div', 'msg-reactions', { testid: 'message-reactions' });
  for (const r of list || []) {
    const names = r.who.map((id) => nameOf(id)).join(', ');
    const chip = el('button', 'reaction-chip', {
      type: 'button', testid: 'reaction', 'aria-pressed': String(r.mine),
      'aria-label': `${r.emoji} ${r.count}: ${names}${r.mine ? ' (click to take yours back)' : ''}`, title: names,
      text: `${r.emoji} ${r.count}`,
    });
    chip.dataset.emoji = r.emoji;
    chip.addEventListener('click', () => toggle(r.emoji, r.mine));
    bar.append(chip);
  }
  const add = el('button', 'reaction-add', { type: 'button', testid: 'reaction-add', 'aria-label': 'Add reaction', 'aria-expanded': 'false', title: 'Add reaction', text: '☺+' });
  const picker = el('div', 'reaction-picker', { testid: 'reaction-picker', role: 'group', 'aria-label': 'Reactions' });
  picker.hidden = true;
  for (const emoji of REACTIONS) {
    const mine = (list || []).some((r) => r.emoji === emoji && r.mine);
    const b = el('button', 'reaction-pick', { type: 'button', testid: 'reaction-pick', 'aria-label': `React with ${emoji}`, text: emoji });
    b.dataset.emoji = emoji;
    b.addEventListener('click', () => {
      picker.hidden = true;
      add.setAttribute('aria-expanded', 'false');
      toggle(emoji, mine);
    });
    picker.append(b);
  }
  add.addEventListener('click', () => {
    picker.hidden = !picker.hidden;
    add.setAttribute('aria-expanded', String(!picker.hidden));
    if (!picker.hidden) picker.firstElementChild.focus();
  });
  bar.append(add, picker);
  return bar;
}
