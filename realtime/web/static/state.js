// What the page knows of the signed-in user, shared by every screen: the welcome (`me`: the
// user, their projects with rooms and rights), the live connection and the open screen.

export const state = { me: null, live: null, view: null, status: "connecting" };

export function currentSpace(spaceId) {
  return state.me?.spaces.find((s) => s.id === spaceId);
}

export function currentRoom(spaceId, roomId) {
  return currentSpace(spaceId)?.rooms.find((r) => r.id === roomId);
}
