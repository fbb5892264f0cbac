// autoGrow makes a textarea (the chat composer) as tall as its content,
// from one line up to maxPx, after which it scrolls. It follows typing,
// and fit() after the text was sent shrinks it back. While the text fits
// in one line nothing is measured again, so typing stays cheap.

export function autoGrow(area, maxPx = 160) {
  let grown = false;
  const fit = () => {
    if (!grown && area.scrollHeight <= area.clientHeight) return;
    area.style.height = 'auto';
    const h = Math.min(area.scrollHeight + (area.offsetHeight - area.clientHeight), maxPx);
    area.style.height = `${h}px`;
    area.style.overflowY = area.scrollHeight > area.clientHeight ? 'auto' : 'hidden';
    grown = area.value !== '' && area.scrollHeight > 0;
  };
  area.addEventListener('input', fit);
  return { fit };
}
