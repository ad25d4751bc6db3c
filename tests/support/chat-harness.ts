// The page script of the app's browser tests that drive one <qwen-chat>: it logs the element's
// 'ready' and 'error' events in window.log and sets window.harnessReady once the element is up.
export const CHAT_HARNESS_JS = `
import '/src/ui/qwen-chat.ts';
const chat = document.querySelector('qwen-chat');
window.log = [];
for (const type of ['ready', 'error']) chat.addEventListener(type, (e) => window.log.push({ type, detail: JSON.parse(JSON.stringify(e.detail ?? null)) }));
await chat.updateComplete;
window.harnessReady = true;
`;
