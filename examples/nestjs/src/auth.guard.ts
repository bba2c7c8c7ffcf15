import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';

/** Stands in for your auth (Passport's AuthGuard): `request.user` from a header. */
@Injectable()
export class AuthGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest();
    const id = request.headers['x-user-id'];
    if (id) request.user = { id, email: `${id}@example.com` };
    return true;
  }
}
