// Team: members and their roles, invitations (sent by e-mail; the link lands on
// /invitations/accept).

import { api, tenantPath } from '../api.js';
import { h, replace, form, table, toast, confirmButton, section, readOnlyNote, errorBox, when } from '../ui.js';

const ROLES = [['viewer', 'Viewer — reads everything'], ['member', 'Member — uses the tenant'], ['admin', 'Admin — manages it'], ['owner', 'Owner — and its owners']];

/** `/tenants/{slug}/team`. */
export async function page(ctx) {
  const members = h('div', { 'aria-live': 'polite' });
  const invitations = h('div', { 'aria-live': 'polite' });
  const admin = ctx.can('admin');
  const roles = ROLES.filter(([role]) => role !== 'owner' || ctx.role === 'owner');
  ctx.main.append(h('h1', {}, 'Team'));
  if (!admin) ctx.main.append(readOnlyNote(ctx.role));
  ctx.main.append(section('Members', members));
  if (admin) {
    ctx.main.append(section('Invite someone', form({
      className: 'inline',
      fields: [
        { name: 'email', label: 'E-mail address', type: 'email', required: true, autocomplete: 'off' },
        { name: 'role', label: 'Role', type: 'select', options: roles, value: 'member' },
      ],
      submit: 'Send invitation',
      async onSubmit(v, element) {
        await api('POST', tenantPath(ctx.slug, '/invitations'), { email: v.email.trim(), role: v.role });
        element.reset();
        toast(`Invitation sent to ${v.email.trim()}.`);
        await loadInvitations();
      },
    })), section('Pending invitations', invitations));
  }

  async function loadMembers() {
    try {
      const reply = await api('GET', tenantPath(ctx.slug, '/members'));
      const me = ctx.user.user ? ctx.user.user.id : null;
      replace(members, table([
        ['Name', (m) => m.name],
        ['E-mail', (m) => m.email],
        ['Role', (m) => (admin && m.userId !== me
          ? h('select', {
            'aria-label': `Role of ${m.email}`,
            onchange: async (event) => {
              try {
                await api('PATCH', tenantPath(ctx.slug, `/members/${encodeURIComponent(m.userId)}`), { role: event.target.value });
                toast(`${m.email} is now ${event.target.value}.`);
              } catch (error) {
                toast(error.message);
                event.target.value = m.role;
              }
            },
          }, ROLES.map(([role]) => h('option', { value: role, selected: role === m.role }, role)))
          : m.role)],
        ['Joined', (m) => when(m.joinedAt)],
        ['', (m) => (admin || m.userId === me ? confirmButton(m.userId === me ? 'Leave' : 'Remove', 'Sure?', async () => {
          await api('DELETE', tenantPath(ctx.slug, `/members/${encodeURIComponent(m.userId)}`));
          if (m.userId === me) ctx.navigate('/tenants');
          else await loadMembers();
        }) : null)],
      ], reply.items, { caption: 'Members' }));
    } catch (error) {
      replace(members, errorBox(error));
    }
  }

  async function loadInvitations() {
    try {
      const reply = await api('GET', tenantPath(ctx.slug, '/invitations'));
      replace(invitations, table([
        ['E-mail', (i) => i.email],
        ['Role', (i) => i.role],
        ['Expires', (i) => when(i.expiresAt)],
        ['', (i) => confirmButton('Revoke', 'Revoke it?', async () => {
          await api('DELETE', tenantPath(ctx.slug, `/invitations/${encodeURIComponent(i.id)}`));
          await loadInvitations();
        })],
      ], reply.items, { empty: 'No pending invitations.' }));
    } catch (error) {
      replace(invitations, errorBox(error));
    }
  }
  await loadMembers();
  if (admin) await loadInvitations();
}
