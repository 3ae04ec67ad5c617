// Layer: js-wrapper. The one conversion from an SSE message to the WebSocket frame form the
// engine reads, shared by the engine wrapper and the SSE transport; and which frames of a tab's
// stream are its own replies (never forwarded to the other tabs).

/** Splices an SSE message (event name + data text) into a frame with "type", without parsing it. */
export function sseToFrame(type: string, data: string): string {
  const body = data.trim();
  if (!body.startsWith('{')) return JSON.stringify({ type, data: body });
  const rest = body.slice(1).trimStart();
  return '{"type":' + JSON.stringify(type) + (rest.startsWith('}') ? '' : ',') + rest;
}

/** Results and errors are replies to this connection, not part of the shared stream. */
export function isOwnReply(frame: string): boolean {
  if (!frame.includes('"results"') && !frame.includes('"error"')) return false;
  try {
    const t = (JSON.parse(frame) as { type?: string }).type;
    return t === 'results' || t === 'error';
  } catch {
    return false;
  }
}
