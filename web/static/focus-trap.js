// trapFocus keeps Tab and Shift+Tab inside container (a dialog that is
// not a native modal <dialog>), focuses first, and returns the release
// function, which gives focus back to where it was.

const FOCUSABLE = 'button:not([disabled]), [href], input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

export function trapFocus(container, first) {
  const before = document.activeElement;
  const onKey = (ev) => {
    if (ev.key !== 'Tab') return;
    const items = [...container.querySelectorAll(FOCUSABLE)].filter((e) => !e.hidden && e.getClientRects().length > 0);
    if (!items.length) return;
    const i = items.indexOf(document.activeElement);
    if (ev.shiftKey && i <= 0) {
      ev.preventDefault();
      items[items.length - 1].focus();
    } else if (!ev.shiftKey && (i === -1 || i === items.length - 1)) {
      ev.preventDefault();
      items[0].focus();
    }
  };
  document.addEventListener('keydown', onKey);
  (first || container.querySelector(FOCUSABLE) || container).focus();
  return () => {
    document.removeEventListener('keydown', onKey);
    if (before && before.focus && document.contains(before)) before.focus();
  };
}
