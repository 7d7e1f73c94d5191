// Phone numbers: buy one (optionally in an area code, answered by a chosen agent), list them
// with status and the agent that answers, change that agent, release one.

import { api, tenantPath } from '../api.js';
import { h, replace, form, table, toast, confirmButton, section, readOnlyNote, errorBox, describe } from '../ui.js';

const DEFAULT = 'default';
let controlSeq = 0;

/**
 * The agent of a bought number, for admins: a select of the tenant's agents and a button that
 * sends `PATCH …/numbers/{e164}` (`{"agent": name}`, or `null` for the default agent). The
 * API's answer shows beside it: a refused agent (422, naming the field) or a number whose
 * manifest holds its agent (409) keeps the select on the current agent.
 */
function agentControl(ctx, number, agents, reload) {
  const id = `number-agent-${++controlSeq}`;
  const current = number.agent || DEFAULT;
  const options = agents.map((a) => [a.name, a.name === DEFAULT ? 'default agent' : a.name]);
  // An agent deleted since the purchase: the number gets the default agent until changed.
  if (!options.some(([name]) => name === current)) options.push([current, `${current} (deleted)`]);
  const select = h('select', { id, name: 'agent', 'aria-describedby': `${id}-result` },
    options.map(([value, text]) => h('option', { value, selected: value === current }, text)));
  const result = h('small', { id: `${id}-result`, class: 'number-agent-result', role: 'status' });
  const button = h('button', { type: 'button' }, 'Change agent');
  button.addEventListener('click', async () => {
    result.className = 'number-agent-result';
    result.textContent = '';
    select.removeAttribute('aria-invalid');
    button.disabled = true;
    try {
      const agent = select.value === DEFAULT ? null : select.value;
      const updated = await api('PATCH', tenantPath(ctx.slug, `/numbers/${encodeURIComponent(number.e164)}`), { agent });
      const now = updated.agent || 'the default agent';
      toast(`${number.e164} is now answered by ${now}.`);
      await reload();
    } catch (error) {
      select.value = current;
      select.setAttribute('aria-invalid', 'true');
      result.className = 'number-agent-result field-error';
      result.textContent = describe(error);
      select.focus();
    } finally {
      button.disabled = false;
    }
  });
  return h('div', { class: 'number-agent' },
    h('label', { for: id, class: 'sr-only' }, `Agent answering ${number.e164}`),
    h('div', { class: 'row' }, select, button,
      h('a', { href: `/tenants/${encodeURIComponent(ctx.slug)}/agents/${encodeURIComponent(current)}` }, 'Open agent')),
    result);
}

/** `/tenants/{slug}/numbers`. */
export async function page(ctx) {
  const list = h('div', { 'aria-live': 'polite' });
  ctx.main.append(h('h1', {}, 'Phone numbers'));
  let agents = { items: [] };
  if (ctx.can('admin')) {
    agents = await api('GET', tenantPath(ctx.slug, '/agents?limit=100'));
    ctx.main.append(section('Buy a number', form({
      className: 'inline',
      fields: [
        { name: 'areaCode', label: 'Area code', placeholder: '555', help: 'Digits; leave empty for any number in the country. The sandbox carrier has 555.', autocomplete: 'off' },
        { name: 'agent', label: 'Answered by', type: 'select', value: 'default', options: (agents.items || []).map((a) => [a.name, a.name === 'default' ? 'default agent' : a.name]) },
      ],
      submit: 'Buy number',
      async onSubmit(values) {
        const body = values.areaCode.trim() ? { areaCode: values.areaCode.trim() } : {};
        if (values.agent && values.agent !== 'default') body.agent = values.agent;
        const bought = await api('POST', tenantPath(ctx.slug, '/numbers'), body);
        toast(bought.e164 ? `Bought ${bought.e164}.` : 'Purchase under way.');
        await load();
      },
    })));
  } else {
    ctx.main.append(readOnlyNote(ctx.role));
  }
  ctx.main.append(section('Your numbers', list));

  async function load() {
    try {
      const page = await api('GET', tenantPath(ctx.slug, '/numbers'));
      if (!ctx.current()) return;
      replace(list, table([
        ['Number', (n) => n.e164 || h('em', {}, 'being bought')],
        ['Status', (n) => h('span', { class: `badge ${String(n.status).toLowerCase()}` }, n.status)],
        ['Carrier', (n) => n.carrier],
        ['Answered by', (n) => (ctx.can('admin') && n.e164
          ? agentControl(ctx, n, agents.items || [], load)
          : h('a', { href: `/tenants/${encodeURIComponent(ctx.slug)}/agents/${encodeURIComponent(n.agent || DEFAULT)}` }, n.agent || 'default agent'))],
        ['', (n) => (ctx.can('admin') && n.e164 ? confirmButton('Release', `Release ${n.e164}?`, async () => {
          await api('DELETE', tenantPath(ctx.slug, `/numbers/${encodeURIComponent(n.e164)}`));
          toast(`Released ${n.e164}.`);
          await load();
        }) : null)],
      ], page.items, { caption: 'Numbers of this tenant', empty: 'No numbers yet. Buy one to take calls.' }));
    } catch (error) {
      replace(list, errorBox(error));
    }
  }
  await load();
  // Kubernetes purchases finish later: refresh while one is pending.
  ctx.every(5000, () => { if (list.querySelector('em')) load(); });
}
