// What the page knows of the signed-in user, shared by every screen: the welcome (`me`: the
// user, their projects with rooms and rights), the live connection and the open screen.

export const state = { me: null, live: null, view: null, status: "connecting" };

// What the page keeps on this browser for one user — drafts, posts not yet acknowledged — is
// under keys that name them ("twinhub.<what>.<user id>…"): on a classroom PC shared by a
// class, the next pupil to log in never sees, nor sends, the last one's words; logging out
// forgets them (forgetUser).
export function userKey(what, ...rest) {
  return ["twinhub", what, state.me.user.id, ...rest].join(".");
}

export function forgetUser(userId) {
  const mine = new RegExp(`^twinhub\\.[\\w-]+\\.${userId}(\\.|$)`);
  for (const key of Object.keys(localStorage)) if (mine.test(key)) localStorage.removeItem(key);
}

export function currentSpace(spaceId) {
  return state.me?.spaces.find((s) => s.id === spaceId);
}

export function currentRoom(spaceId, roomId) {
  return currentSpace(spaceId)?.rooms.find((r) => r.id === roomId);
}

// The areas of a project where the viewer may make a room (the menu's "New room", the form).
export function roomAreas(space) {
  return [...new Set((space?.rooms || []).filter((r) => r.rights.includes("create_room")).map((r) => r.area))];
}

// Whose menu has the project's Members screen: teachers (what each may do there, the member
// list's `may` says).
export const hasMembersScreen = (role) => role === "teacher_admin" || role === "teacher_member";
